"""The web server: the Chainlit chat app, login and sessions, chat history, uploads and browser voice.

Nothing imports the Chainlit app (``app.py``): the server mounts it by path.
"""
