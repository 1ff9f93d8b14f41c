"""Thin views: read through `access`, write through `services`, record views of clinical data in `audit`."""
