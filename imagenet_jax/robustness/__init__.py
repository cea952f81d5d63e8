"""Robustness tools: adversarial attacks on images in 0-255 pixel units."""
