"""Rendering of figures into files: XLSX, DOCX, PDF certificates, PNG charts (reporting issue)."""
