"""smoothscore.nets"""
