"""Model providers behind one port. Only the offline model exists so far; real providers plug in here."""
