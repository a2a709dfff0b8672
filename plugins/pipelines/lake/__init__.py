"""One namespace's lake: which table holds each layer of a dataset, the table format (versioned
tables with atomic commits), and the bytes on disk or S3 behind the one write guard."""
