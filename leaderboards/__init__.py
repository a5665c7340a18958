"""Storage and ranking for Sakuga Hub: schema and migrations, arena battles and votes, ratings, boards.

Plain data and statistics only (SQLAlchemy, pandas, scipy, scikit-learn, matplotlib): this package never
imports torch, diffusers or gradio, so the CLI and batch workers can use it anywhere.
"""
