"""Cloud containers: licenses held on the server, used online from registered devices."""
