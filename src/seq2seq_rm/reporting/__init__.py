"""Reports of finished runs: tables of a folder (report), head-to-head comparison (compare), plots."""
