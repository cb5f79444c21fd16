"""Data shipped inside the installed package (check packs, templates, playbooks, inventories)."""
