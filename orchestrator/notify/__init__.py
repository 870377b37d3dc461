"""Notifications: Slack, SNS or a webhook, when a run fails, rolls back, waits for approval or succeeds.

`spec` (what pipeline.yaml says) is light and loaded with the pipeline; `message` and `send` are imported only
when a command ends with something to say."""
