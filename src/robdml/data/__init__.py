"""Datasets: rendering/downloading, the prepared split files, and image transforms."""
