# HTTPS on the public port (docs/jupyterhub.md, "TLS"): JupyterHub passes both files to
# Switchyard as --ssl-cert/--ssl-key, as it does to configurable-http-proxy.
c.JupyterHub.ssl_cert = '/etc/letsencrypt/live/hub.example.org/fullchain.pem'
c.JupyterHub.ssl_key = '/etc/letsencrypt/live/hub.example.org/privkey.pem'
