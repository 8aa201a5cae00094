"""The report: runs, tables, plots, significance, rendering to Markdown/HTML."""
