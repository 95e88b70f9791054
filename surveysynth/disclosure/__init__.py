"""Protection of published tables: primary and secondary suppression and the LP audit."""
