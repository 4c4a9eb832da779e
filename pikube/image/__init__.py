"""`pikube image build`: the SD-card image, made from the data in image-builder/ (laptop side, never on a board)."""
