"""The governance docket as a board reads it: SLO reports and the Day-7 gate as HTML/PDF.

``evidence`` gathers what the home holds for a window (ledger head and signed checkpoint,
incidents, backups, drills) into the report before it is signed; ``charts`` draws each
SLO's series with matplotlib; ``render`` fills the Jinja2 templates and prints them to PDF
with WeasyPrint. Everything printed comes from the signed JSON document: nothing is
queried or recomputed while rendering.
"""
