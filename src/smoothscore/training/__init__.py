"""smoothscore.training"""
