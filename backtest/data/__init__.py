"""Data layer: raw market inputs (each on its own calendar) and the aligned HK-calendar panel."""
