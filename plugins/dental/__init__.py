from core import ProtocolPlugin

plugin = ProtocolPlugin(__name__)
