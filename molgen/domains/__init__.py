"""Domain encoders. Importing this package registers every domain."""

from molgen.domains.base import Domain, Tokenizer
from molgen.domains.crystal import CrystalDomain, CrystalTokenizer
from molgen.domains.molgraph import MolGraphDomain
from molgen.domains.protein import ProteinDomain, ProteinTokenizer
from molgen.domains.selfies import SelfiesDomain, SelfiesTokenizer
from molgen.domains.smiles import SmilesDomain, SmilesTokenizer

__all__ = ["CrystalDomain", "CrystalTokenizer", "Domain", "MolGraphDomain", "ProteinDomain", "ProteinTokenizer", "SelfiesDomain", "SelfiesTokenizer", "SmilesDomain", "SmilesTokenizer", "Tokenizer"]
