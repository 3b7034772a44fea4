"""Domain encoders. Importing this package registers every domain."""

from molgen.domains.base import Domain, Tokenizer
from molgen.domains.smiles import SmilesDomain, SmilesTokenizer

__all__ = ["Domain", "SmilesDomain", "SmilesTokenizer", "Tokenizer"]
