"""The shared kernel: what every spp process (three services and the gateway) stands on."""
