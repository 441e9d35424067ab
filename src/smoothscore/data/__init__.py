"""smoothscore.data"""
