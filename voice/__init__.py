"""Speech in (streaming and whole-utterance recognition) and speech out. Not built yet."""
