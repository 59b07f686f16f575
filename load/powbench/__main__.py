from load.powbench.bench import main

main()
