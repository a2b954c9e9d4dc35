"""The Tekton API service: REST, Server-Sent Events and the web dashboard."""
