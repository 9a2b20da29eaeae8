# What the idle culler reads (docs/jupyterhub.md, "The idle culler"): the hub copies each user's
# last_activity from the proxy's GET /api/routes every last_activity_interval seconds, and a
# service with the scope read:users:activity reads it from the hub's REST API.
import os

c.JupyterHub.last_activity_interval = 60
c.JupyterHub.services = [{'name': 'activity-reader', 'api_token': os.environ['ACTIVITY_READER_TOKEN']}]
c.JupyterHub.load_roles = [{
    'name': 'activity-reader',
    'scopes': ['list:users', 'read:users:activity'],
    'services': ['activity-reader'],
}]
