"""noether_ppl.analysis (exports are filled in as modules land)."""
