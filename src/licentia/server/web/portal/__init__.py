"""The customers' License Portal at ``/portal/{vendor-slug}/``, in the vendor's brand."""
