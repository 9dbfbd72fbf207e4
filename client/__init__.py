"""The amsm CLI: asks Temporal; never touches a device."""
