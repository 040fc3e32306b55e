"""noether_ppl.inference (exports are filled in as modules land)."""
