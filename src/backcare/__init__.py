"""Backcare: massage therapy for back pain, made safe and recorded."""
