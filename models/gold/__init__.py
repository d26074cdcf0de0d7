"""Gold: the resolved entities — crosswalk, stable ids, golden records, the review queue (issue 5)."""
