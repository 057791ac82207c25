"""The model catalog data (models.csv); parsed by mesh.router.catalog."""
