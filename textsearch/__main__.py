from textsearch.cli import main

main()
