"""llmaas mesh: edge, router and security filter."""
