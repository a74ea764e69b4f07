"""Pages of the support app: the members' chat (`chat`) and the support console (`console`)."""
