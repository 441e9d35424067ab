"""smoothscore.metrics"""
