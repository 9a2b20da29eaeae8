# JupyterHub with Switchyard replicas it does not start (docs/jupyterhub.md, "High availability").
c.ConfigurableHTTPProxy.should_start = False
# The load balancer in front of every replica's REST API; it adds X-Switchyard-Wait: all, so a
# route the hub adds is live on every replica before the hub sends the user to it.
c.ConfigurableHTTPProxy.api_url = 'http://switchyard-api.internal:8001'
# The hub must be reachable from every replica (routes point at it).
c.JupyterHub.hub_bind_url = 'http://0.0.0.0:8081'
c.JupyterHub.hub_connect_url = 'http://hub.internal:8081'
