"""The operator console (`amsm console`): the manual's window in a browser. A client of
Temporal like the CLI, never of a device: it reads the same queries and sends the same
updates and control workflows (client/runs.py, workflows/), as the logged-in user. No
room below it (workflows/, activities/, workers/) imports it."""
