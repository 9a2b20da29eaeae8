# JupyterHub starts Switchyard itself, as it starts configurable-http-proxy (docs/jupyterhub.md).
c.ConfigurableHTTPProxy.command = ['switchyard', '--config', '/etc/switchyard/switchyard.toml']
# Where the hub reaches Switchyard's REST API (the port JupyterHub passes as --api-port).
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:8001'
