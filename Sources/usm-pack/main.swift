print("usm-pack")
