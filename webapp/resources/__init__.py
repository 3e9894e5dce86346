"""The resources directory of each territory: services a victim can be referred to."""
