"""Domain encoders. Importing this package registers every domain."""

from molgen.domains.base import Domain, Tokenizer
from molgen.domains.crystal import CrystalDomain, CrystalTokenizer
from molgen.domains.smiles import SmilesDomain, SmilesTokenizer

__all__ = ["CrystalDomain", "CrystalTokenizer", "Domain", "SmilesDomain", "SmilesTokenizer", "Tokenizer"]
