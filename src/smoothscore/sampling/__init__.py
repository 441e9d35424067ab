"""smoothscore.sampling"""
