"""A fixed English text (written for these tests) for teacher-forced quality checks."""

TEXT = (
    "The old lighthouse stood at the edge of the harbour for more than a hundred years. Every "
    "evening the keeper climbed the narrow stairs, cleaned the glass and lit the lamp, so that "
    "the fishing boats could find their way home through the fog. In winter the storms were so "
    "strong that the waves reached the windows of the small house at the foot of the tower.\n\n"
    "When the town built a new electric light on the hill, the lighthouse was no longer needed. "
    "The keeper moved to a cottage near the market, where he spent his mornings talking with the "
    "fishermen and his afternoons writing letters to his daughter, who lived in the capital and "
    "worked as a teacher at a large school.\n\n"
    "Water boils at one hundred degrees Celsius at sea level, but at a lower temperature in the "
    "mountains, because the air pressure is lower. This is why cooking pasta takes longer at high "
    "altitude. Plants use sunlight, water and carbon dioxide to produce sugar and oxygen, a process "
    "called photosynthesis, which takes place mainly in their leaves.\n\n"
    "To make a simple bread, mix flour, water, salt and a little yeast, knead the dough for ten "
    "minutes, let it rise for an hour, shape it into a loaf and bake it in a hot oven until the "
    "crust is golden brown."
)
