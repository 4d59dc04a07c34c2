BLOCKS = {}
