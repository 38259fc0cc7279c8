from annuaire.cli import main

main()
