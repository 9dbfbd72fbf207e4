"""The pair's inventory: models, loading with clear errors, pair-mode derivation."""

from inventory.load import InventoryError, load_inventory
from inventory.models import SIDES, Inventory, Side, other

__all__ = ["SIDES", "Inventory", "InventoryError", "Side", "load_inventory", "other"]
