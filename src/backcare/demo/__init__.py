"""Fictional clinics to try Backcare on and to measure it with: the demo clinic (`backcare.demo.clinic`) and the
same clinic at chain scale (`backcare.demo.scale`), and the `backcare demo` command that loads them.

They build the whole product (clinical records, the audit trail, rooms and appointments), so this package sits on
top of every app and may import all of them; no app imports it."""
