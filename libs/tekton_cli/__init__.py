"""The `tekton` command: lifecycle of the fleet and conversations with its CIs."""
