"""composer: declarative graph composition for generative models."""
