set terminal pngcairo size 1200,720 noenhanced
set bmargin 14
set rmargin 4
set output 'bench/results/latest.png'
set title 'regent and its peers: throughput (ops/s, log scale, higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set logscale y
set yrange [1:*]
set xtics rotate by -30 font ',9'
set key outside top center horizontal
set grid ytics
plot 'bench/results/latest.dat' using 2:xtic(1) title 'regent', 'bench/results/latest.dat' using 3:xtic(1) title 'regent, TLS off', 'bench/results/latest.dat' using 4:xtic(1) title 'global', 'bench/results/latest.dat' using 5:xtic(1) title 'Elixir Registry', 'bench/results/latest.dat' using 6:xtic(1) title 'pg', 'bench/results/latest.dat' using 7:xtic(1) title 'syn', 'bench/results/latest.dat' using 8:xtic(1) title 'Horde'
