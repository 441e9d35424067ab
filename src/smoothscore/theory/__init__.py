"""smoothscore.theory"""
