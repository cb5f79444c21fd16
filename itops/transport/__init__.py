"""Transports: how itops reaches targets (SSH, local shell, AWS). Checks never see them."""
